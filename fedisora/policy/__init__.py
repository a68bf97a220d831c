"""Prompt policy: the pure matcher of protected names (:mod:`fedisora.policy.matcher`).

The lists themselves live in the database and are edited through
:mod:`fedisora.services.prompt_policy`; nothing in this package does I/O.
"""
