"""The contracts every other part of bench is written against: Task, Dataset, Adapter, Metric, Protocol,
submission formats, typed structures, errors and the registry machinery.  Imports nothing above it."""
