"""Every figure; the only subpackage that imports matplotlib (lazily, inside functions).

Each analysis area has its own module (``rates``, ``regression``, ``survival``,
``report``); ``style`` holds the one look shared by all of them.
"""
