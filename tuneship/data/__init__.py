"""The torch-free data core shared by training and serving: one reader for every format (`records`), column
detection (`columns`), and each task's rows and examples, read and checked (`classification`,
`question_answering`, `summarization`)."""

from .records import Record, RecordReader, read_records

__all__ = ["Record", "RecordReader", "read_records"]
