"""Distillation losses, one per file, registered under ``distill.loss``."""
