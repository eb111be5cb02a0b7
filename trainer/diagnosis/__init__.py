"""Why a network trains badly: evidence from its internals, and rules that name the problem.

Pure NumPy (no Keras): `evidence` reduces a logged epoch's arrays to numbers, `rules` turns
the numbers into `schemas.diagnosis.Diagnosis` items, `facts` (the only Keras-aware module)
reads what the rules need to know about the model. docs/diagnosis.md documents every rule.
"""
