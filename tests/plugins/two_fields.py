"""A tokenizer family with two fields, as BiCodec has: `two-fields:-` gives 4 `global` tokens an
item and one `semantic` token every 20 ms (the gated test tokenizer's units). Registered through
AUDIOTOK_TOKENIZERS=tests.plugins.two_fields."""

from audiotok.tokenizers import Family, register
from tests.plugins.gated import units_of


class TwoFields:
    sample_rate = 16000
    fields = ("global", "semantic")

    def __call__(self, waves):
        return [{"global": [1, 2, 3, 4], "semantic": units_of(wave)} for wave in waves]


FAMILY = register(Family("two-fields", lambda target: None, lambda target, device, dtype: TwoFields(), "two-fields:-, a test tokenizer (global, semantic)"))
