"""Expression similarity: a compact face-expression embedding trained on face triplets, and
search over a run's faces with it.

After Vemulapalli & Agarwala, "A Compact Embedding for Facial Expression Similarity"
(CVPR 2019, FECNet): a 16-d L2-normalised embedding in which faces that people judge alike
lie close, learnt with a triplet loss on "which two of three are most alike" judgements.
Here the judgements are the FER+-vote triplets of the shared data
(``fer_similarity/triplets_*.parquet``, faces of ``fer2013/fer2013.parquet``) and the
network is the workflow's own frame CNN (its trunk) with a small head.

``triplets``  faces and triplets by ``source_file``, the loss, mining, triplet accuracy
``model``     the embedding network (frame CNN trunk + head), load / embed
``fit``       training (rule ``fit_expression_embedding``; ``python -m emoflow.features.fit expression_embedding``)
``extractor`` the ``expression_embedding`` extractor: 16 numbers per aligned face frame
``index``     a run's faces embedded once (rule ``similarity_index``: ``similarity/index.*``)
``search``    ``emoflow similar --run RESULTS QUERY``: nearest faces and a contact sheet
"""
