"""``fleetbatch bench``: batches of generated VINs through the real stack, measured.

Each configuration runs on a fresh embedded dev server, a fresh SQLite store,
the in-process bus and simulators that answer at once, so its figures are its
own. ``runner`` runs them, ``reference`` holds the per-VIN reference workflows
every rate is compared with, ``report`` prints the table or JSON.

This package is kept import-light on purpose: the workflow sandbox imports it
when it loads ``reference``.
"""
