"""The simulated Jetson board: hardware the daemon runs against wherever no Jetson is found.

- `boards`: the board profiles (Nano, Orin Nano, Orin Nano Super, Orin NX 16GB, AGX Orin 64GB) and their
  stock nvpmodel confs in `confs/`.
- `board`: the pure physics (power, temperature, throttling, inference speed), reusable on a virtual clock.
- `live`: `SimulatedBoard`, a sysfs tree in a directory kept alive by a physics thread.
- `emulators`: the board's `tegrastats`, `nvpmodel` and `systemctl` programs
  (`python -m jetvit_daemon.sim.emulators TOOL --root DIR ...`).

Nothing is imported here, so starting an emulator subprocess stays cheap.
"""
