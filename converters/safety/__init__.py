"""Guards that keep untrusted model files inert: nothing here runs code from a file.

Each module checks one kind of container before a framework's own loader is allowed near it:

* ``pickles``     — an opcode pre-scan (memo indices, declared sizes, opcode budget) for every pickle
* ``archives``    — zip members checked by declared size and compression ratio before they are read
* ``torchscript`` — what a TorchScript archive would run when loaded or run (``__setstate__``, file ops)
* ``pt2``         — what ``torch.export.load`` would unpickle, ``sympify`` or ``exec`` from a ``.pt2``
* ``savedmodel``  — side-effecting ops (file I/O, py_function, …) reachable from a SavedModel's functions

A failed check raises :class:`converters.errors.TrustRequired` (the file would run code; the message says
what) or :class:`converters.errors.CorruptFile` / :class:`converters.errors.ResourceLimit` (a budget).
"""
