"""mooring: from raw tabular data to a served, monitored, safely rolled-out SavedModel.

The supported Python API is what this package exports (and the same names where the
package faces ``mooring.config``, ``mooring.registry``, ``mooring.serving``,
``mooring.monitoring`` and ``mooring.pipeline`` export them); every other module is
internal (its name starts with an underscore) and may change in any release. The names
are imported on first use, so ``import mooring`` loads neither TensorFlow nor the server.

``_EXPORTS`` below declares them: each name and the module it comes from. ``__all__``,
``dir(mooring)``, the lazy import and the Python API reference are derived from it; the
``TYPE_CHECKING`` block repeats it for type checkers, and a test fails when the two differ.

Examples:
    >>> import mooring
    >>> mooring._EXPORTS["Registry"], "Registry" in mooring.__all__
    ('mooring.registry', True)
    >>> project = mooring.Project.load("mooring-demo/mooring.toml")  # doctest: +SKIP
    >>> result = project.run()  # doctest: +SKIP
    >>> registry = mooring.Registry.from_config(project.config)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mooring._exports import exports_on_first_use
from mooring._tensorflow import quiet_when_imported

# What type checkers see: the same names, each re-exported (``X as X``).
# tests/test_exports.py fails when this block and _EXPORTS disagree.
if TYPE_CHECKING:
    from mooring._project import Project as Project
    from mooring.config import MooringConfig as MooringConfig
    from mooring.config import ServingConfig as ServingConfig
    from mooring.config import load_config as load_config
    from mooring.errors import ChecksFailedError as ChecksFailedError
    from mooring.errors import ConfigError as ConfigError
    from mooring.errors import ConflictError as ConflictError
    from mooring.errors import DataError as DataError
    from mooring.errors import DeadlineExceededError as DeadlineExceededError
    from mooring.errors import IntegrityError as IntegrityError
    from mooring.errors import InvalidRequestError as InvalidRequestError
    from mooring.errors import MissingExtraError as MissingExtraError
    from mooring.errors import ModelLoadError as ModelLoadError
    from mooring.errors import ModelUnavailableError as ModelUnavailableError
    from mooring.errors import MooringError as MooringError
    from mooring.errors import NotFoundError as NotFoundError
    from mooring.errors import OverloadedError as OverloadedError
    from mooring.errors import PayloadTooLargeError as PayloadTooLargeError
    from mooring.errors import RegistryUnavailableError as RegistryUnavailableError
    from mooring.errors import SchemaError as SchemaError
    from mooring.errors import UnauthorizedError as UnauthorizedError
    from mooring.errors import UsageError as UsageError
    from mooring.monitoring import DriftReport as DriftReport
    from mooring.monitoring import check_drift as check_drift
    from mooring.pipeline import RunResult as RunResult
    from mooring.pipeline import run_pipeline as run_pipeline
    from mooring.registry import Deployment as Deployment
    from mooring.registry import ModelSummary as ModelSummary
    from mooring.registry import ModelVersion as ModelVersion
    from mooring.registry import Registry as Registry
    from mooring.registry import RunRecord as RunRecord
    from mooring.registry import VersionRecord as VersionRecord
    from mooring.serving import DirectorySource as DirectorySource
    from mooring.serving import ModelSource as ModelSource
    from mooring.serving import RegistrySource as RegistrySource
    from mooring.serving import Server as Server
    from mooring.serving import build_app as build_app
    from mooring.serving import create_app as create_app

__version__ = "0.1.0"

# TensorFlow's native start-up lines (absl, oneDNN, CUDA probes) stay off the terminal
# of any program that imports mooring, not only the CLI's; MOORING_TF_LOGS=1 shows them.
quiet_when_imported()

# The public API of ``import mooring``, declared once: each supported name and the module
# that defines it (a package face, or an internal module for names no face exports).
_EXPORTS = {
    "Project": "mooring._project",
    "MooringConfig": "mooring.config",
    "ServingConfig": "mooring.config",
    "load_config": "mooring.config",
    "ChecksFailedError": "mooring.errors",
    "ConfigError": "mooring.errors",
    "ConflictError": "mooring.errors",
    "DataError": "mooring.errors",
    "DeadlineExceededError": "mooring.errors",
    "IntegrityError": "mooring.errors",
    "InvalidRequestError": "mooring.errors",
    "MissingExtraError": "mooring.errors",
    "ModelLoadError": "mooring.errors",
    "ModelUnavailableError": "mooring.errors",
    "MooringError": "mooring.errors",
    "NotFoundError": "mooring.errors",
    "OverloadedError": "mooring.errors",
    "PayloadTooLargeError": "mooring.errors",
    "RegistryUnavailableError": "mooring.errors",
    "SchemaError": "mooring.errors",
    "UnauthorizedError": "mooring.errors",
    "UsageError": "mooring.errors",
    "check_drift": "mooring.monitoring",
    "DriftReport": "mooring.monitoring",
    "run_pipeline": "mooring.pipeline",
    "RunResult": "mooring.pipeline",
    "Registry": "mooring.registry",
    "ModelVersion": "mooring.registry",
    "ModelSummary": "mooring.registry",
    "Deployment": "mooring.registry",
    "VersionRecord": "mooring.registry",
    "RunRecord": "mooring.registry",
    "create_app": "mooring.serving",
    "build_app": "mooring.serving",
    "Server": "mooring.serving",
    "ModelSource": "mooring.serving",
    "DirectorySource": "mooring.serving",
    "RegistrySource": "mooring.serving",
}

__all__ = [*_EXPORTS, "__version__"]

__getattr__, __dir__ = exports_on_first_use(__name__, _EXPORTS, globals())
