"""Local, faithful simulators of the Allegro and Wildberries seller APIs.

    from sandbox import SandboxConfig, create_app
    app = create_app(SandboxConfig(scenario="tiny", seed=1))
    world = app.state.world  # ground truth, clock, credentials

See sandbox/README.md.
"""

from sandbox.app import create_app
from sandbox.config import SandboxConfig

__all__ = ["SandboxConfig", "create_app"]
