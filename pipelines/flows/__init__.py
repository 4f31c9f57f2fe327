"""The job code of the DAGs: one module per DAG, each task body one call into it.

A flow reads what the run says (its data day, its conf), calls the domain packages and returns
what the next task needs (references, not data). Nothing below imports a flow.
"""
