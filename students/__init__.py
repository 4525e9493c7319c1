"""First-party student families: MobileViT image towers (timm), TinyBERT-style multilingual text
towers with a SentencePiece tokenizer, and the bilingual student that pairs them."""
