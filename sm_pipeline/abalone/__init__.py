"""The abalone pipeline: what is specific to the project's own pipeline, apart from the generic engine.

Its config (:mod:`.config`), its definition built offline with the SageMaker SDK v3 (:mod:`.definition`,
with :mod:`.code_staging` for its scripts' content-addressed URIs), its input data rule (:mod:`.input_data`:
the labelled CSV and the batch rows derived from it) and abalone-shaped synthetic data (:mod:`.synthetic`).
The validator, the local runner and the emulated service (the rest of ``sm_pipeline``) run any definition
and import nothing from here, except the ``run-local`` staging of ``--stage-data``/``--sample``.
"""
