"""The soak with faults (`make chaos`): load, faults, and the checks of what must hold after."""
