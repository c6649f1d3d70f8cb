# Compiled build: `advance_row` (baseline.py) is a C function on doubles, which
# traffic-spike's bucket close (spike.py, through spike.pxd) calls without a Python
# call; BaselineTable.advance calls it too.
cpdef tuple advance_row(object row, long long bucket, double x0, double x1, double alpha, double length)
