"""Face stage: batched MTCNN detection with tracking, main-face selection, alignment."""
