"""ELECTRA's tokenizer on the `tokenizers` package (spec ``spec/data/tokenizer.yaml``); no TF/JAX import
unless tensors of that framework are asked for."""
from electra_core.tokenizer.auto import AutoTokenizer
from electra_core.tokenizer.batch_encoding import BatchEncoding
from electra_core.tokenizer.electra import ElectraTokenizerFast

__all__ = ["AutoTokenizer", "BatchEncoding", "ElectraTokenizerFast"]
