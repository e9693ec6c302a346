"""Media stages: probe (ffprobe), frames (sampled, JPEG in Parquet), audio (16 kHz wav)."""
