from migrations.common import run
from projections.read_tables import metadata

run(metadata)
