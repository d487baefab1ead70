"""The local sandbox: the real state machine in moto's Step Functions interpreter, the real handlers
in-process, and a simulated service whose health depends on what is deployed (see world.py)."""
