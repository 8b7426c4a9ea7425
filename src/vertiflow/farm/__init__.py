"""The built-in farm: crop physiology, energy, and the simulator that writes farm exports."""
