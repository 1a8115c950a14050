"""One module per op family; importing this package imports every module in it, which registers its handlers
(``@registry.register``): a new module needs no edit here."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
