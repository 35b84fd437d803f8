"""Task ``distill``: knowledge distillation from a cached teacher to a small student."""
