"""An exception that shares a name with one of workerbridge's, from another module."""


class IntegrityError(Exception):
    pass
