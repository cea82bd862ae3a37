"""Property-based tests of the ``methods`` package (and the Conv-k networks it prunes).

A package, so that the test modules are ``tests.test_*`` and cannot clash with test files of the same
name elsewhere in the repository; shared helpers live in :mod:`tests.helpers`.
"""
