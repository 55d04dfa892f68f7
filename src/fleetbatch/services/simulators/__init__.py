"""Simulators of the downstream systems: the embedded defaults, named as such.

They stand in for the real domain and consent services in ``dev`` mode,
demos, benchmarks and tests. Production points fleetbatch at real ones.
"""

from fleetbatch.services.simulators.consent import ConsentSimulator
from fleetbatch.services.simulators.domain import Decision, DomainSimulator, DomainSimulatorConfig

__all__ = ["ConsentSimulator", "Decision", "DomainSimulator", "DomainSimulatorConfig"]
