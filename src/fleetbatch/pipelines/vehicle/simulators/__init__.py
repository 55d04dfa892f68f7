"""Simulators of the downstream systems: the embedded defaults, named as such.

They stand in for the real domain and consent services in ``dev`` mode,
demos, benchmarks and tests. Production points fleetbatch at real ones.
"""

from fleetbatch.pipelines.vehicle.simulators.consent import ConsentSimulator
from fleetbatch.pipelines.vehicle.simulators.domain import (
    Decision,
    DomainSimulator,
    DomainSimulatorConfig,
)

__all__ = ["ConsentSimulator", "Decision", "DomainSimulator", "DomainSimulatorConfig"]
