from sellerpulse.telemetry import disable_prefect_telemetry

__version__ = "0.1.0"

# Before anything imports Prefect (every entry point, flow module and test imports this package).
disable_prefect_telemetry()
