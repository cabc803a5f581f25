"""The demo network: `load_demo` fills it, `run_demo` serves the portal beside simulated site agents."""
