from domain.write_tables import metadata
from migrations.common import run

run(metadata)
