"""After the call: the satisfaction survey and the call-back tasks that follow a dissatisfied rating (art. 15)."""
