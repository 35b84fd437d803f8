"""Task ``ib``: the information plane of a network during training (Shwartz-Ziv & Tishby 2017)."""
