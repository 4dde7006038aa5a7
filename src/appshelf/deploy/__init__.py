"""Publishing a built registry: a pure planner (`plan`) and a thin S3 layer (`s3`, `run`)."""

from appshelf.deploy.run import DeployOptions, DeployReport, deploy_site, read_published
from appshelf.deploy.s3 import ClientOptions, RequestCounter, S3Store, S3Target

__all__ = [
    "ClientOptions",
    "DeployOptions",
    "DeployReport",
    "RequestCounter",
    "S3Store",
    "S3Target",
    "deploy_site",
    "read_published",
]
