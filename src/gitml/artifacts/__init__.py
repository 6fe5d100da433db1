"""Use cases over the bytes runs reference: push, pull, status, gc, and restoring a run's files.

Built on the DVC adapter (`gitml.data`) and the run index (`gitml.query`).
"""
