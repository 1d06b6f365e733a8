"""Hand-written transformer layers on minigrad: attention, positional encodings, FFN, MoE, blocks."""
