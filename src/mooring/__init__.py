"""mooring: from raw tabular data to a served, monitored, safely rolled-out SavedModel.

The supported Python API is what this package exports (and the same names where the
package faces ``mooring.config``, ``mooring.registry``, ``mooring.serving``,
``mooring.monitoring`` and ``mooring.pipeline`` export them); every other module is
internal (its name starts with an underscore) and may change in any release. The names
are imported on first use, so ``import mooring`` loads neither TensorFlow nor the server.

Examples:
    >>> import mooring
    >>> project = mooring.Project.load("mooring-demo/mooring.toml")  # doctest: +SKIP
    >>> result = project.run()  # doctest: +SKIP
    >>> registry = mooring.Registry.from_config(project.config)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mooring._exports import exports_on_first_use
from mooring._tensorflow import quiet_when_imported
from mooring.errors import (
    ChecksFailedError,
    ConfigError,
    ConflictError,
    DataError,
    DeadlineExceededError,
    IntegrityError,
    InvalidRequestError,
    MissingExtraError,
    ModelLoadError,
    ModelUnavailableError,
    MooringError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    RegistryUnavailableError,
    SchemaError,
    UnauthorizedError,
    UsageError,
)

if TYPE_CHECKING:
    from mooring._project import Project
    from mooring.config import MooringConfig, ServingConfig, load_config
    from mooring.monitoring import DriftReport, check_drift
    from mooring.pipeline import RunResult, run_pipeline
    from mooring.registry import (
        Deployment,
        ModelSummary,
        ModelVersion,
        Registry,
        RunRecord,
        VersionRecord,
    )
    from mooring.serving import (
        DirectorySource,
        ModelSource,
        RegistrySource,
        Server,
        build_app,
        create_app,
    )

__version__ = "0.1.0"

# TensorFlow's native start-up lines (absl, oneDNN, CUDA probes) stay off the terminal
# of any program that imports mooring, not only the CLI's; MOORING_TF_LOGS=1 shows them.
quiet_when_imported()

# Each supported name beyond the errors, and the module that defines it.
_EXPORTS = {
    "Project": "mooring._project",
    "MooringConfig": "mooring.config",
    "ServingConfig": "mooring.config",
    "load_config": "mooring.config",
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
    "check_drift": "mooring.monitoring",
    "DriftReport": "mooring.monitoring",
}

__all__ = [
    "ChecksFailedError",
    "ConfigError",
    "ConflictError",
    "DataError",
    "DeadlineExceededError",
    "Deployment",
    "DirectorySource",
    "DriftReport",
    "IntegrityError",
    "InvalidRequestError",
    "MissingExtraError",
    "ModelLoadError",
    "ModelSource",
    "ModelSummary",
    "ModelUnavailableError",
    "ModelVersion",
    "MooringConfig",
    "MooringError",
    "NotFoundError",
    "OverloadedError",
    "PayloadTooLargeError",
    "Project",
    "Registry",
    "RegistrySource",
    "RegistryUnavailableError",
    "RunRecord",
    "RunResult",
    "SchemaError",
    "Server",
    "ServingConfig",
    "UnauthorizedError",
    "UsageError",
    "VersionRecord",
    "__version__",
    "build_app",
    "check_drift",
    "create_app",
    "load_config",
    "run_pipeline",
]

__getattr__, __dir__ = exports_on_first_use(__name__, _EXPORTS, globals())
