"""The governor: policy model, the pure decision function, and the control loop."""
