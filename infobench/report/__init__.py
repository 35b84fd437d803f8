"""From a results folder to a paper: tables (pivot, intervals), claims and the HTML report.

Kept empty of imports: ``infobench compare`` imports ``report.tables`` and must not pay for the
other modules of this package.
"""
