"""compress: distil bilingual (Chinese + English) CLIP models into small models that run on phones.

import compress
teacher = compress.load_teacher("demo")
student = compress.build_student()
compress.Distiller(teacher, student, data=compress.open_data("demo")).fit()
"""

from compress.api import build_student, load_teacher, open_data
from compress.errors import CompressError, UnknownPluginError

__version__ = "0.1.0"

__all__ = [
    "CompressError",
    "Distiller",
    "UnknownPluginError",
    "build_student",
    "load_teacher",
    "open_data",
]


def __getattr__(name):  # keep `import compress` light: the trainer pulls in rich and matplotlib
    if name == "Distiller":
        from compress.distill import Distiller

        return Distiller
    raise AttributeError(f"module 'compress' has no attribute {name!r}")
