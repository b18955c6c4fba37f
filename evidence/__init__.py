"""The evidence a casetrail store gives and how to check it, with nothing but the standard
library and `cryptography`: the per-case hash chain (`chain`), the RFC 6962 Merkle log
(`merkle`, `tree`), C2SP signed notes and checkpoints (`note`), and the verifiers of a
whole store's rows (`verifier`) and of an exported case (`offline`).

Pure: these modules read and write nothing themselves, so that an inspector can run them
away from the store (the security boundary of the audit trail).
"""
