"""``fleetbatch bench``: batches of generated VINs through the real stack, measured.

Benchmark code, not product code: this package lives in ``bench/`` beside the
``fleetbatch`` package, which imports it only when ``fleetbatch bench`` runs
(``cli``). Each configuration runs on a fresh embedded dev server, a fresh
SQLite store, the in-process bus and simulators that answer at once, so its
figures are its own. ``runner`` runs them (fleetbatch's rows through the vehicle
pipeline), ``reference`` holds the per-VIN reference workflows every rate is
compared with, ``skeleton`` the engine's chunk shape with no work in it,
``measure`` the figures (the outcome writes it counts on the store's engine),
``report`` prints the table or JSON.

This package is kept import-light on purpose: the workflow sandbox imports it
when it loads ``reference``.
"""
