import gateway.chatdir.models  # noqa: F401 - its tables join the metadata
from gateway.models import metadata
from qunzhu_common.db.migrate import run_env

run_env(metadata)
