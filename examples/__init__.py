"""Runnable examples of `keras_prelu`: basics, CNN builders and an experiment."""
