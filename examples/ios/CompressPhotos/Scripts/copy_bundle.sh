#!/bin/sh
# Copies the compress bundle ($COMPRESS_BUNDLE, default runs/dc_clip/bundle of this checkout) into
# the app as Bundle/. Run by Xcode as a build phase; without a bundle the app still builds and then
# looks for one in its Documents folder (Files app, Finder or `xcrun simctl`).
set -eu
SOURCE="${COMPRESS_BUNDLE:-${SRCROOT}/../../../runs/dc_clip/bundle}"
DEST="${TARGET_BUILD_DIR}/${UNLOCALIZED_RESOURCES_FOLDER_PATH}/Bundle"
rm -rf "${DEST}"
if [ ! -f "${SOURCE}/manifest.json" ]; then
  echo "warning: no compress bundle at ${SOURCE} (set COMPRESS_BUNDLE); the app will look in Documents/Bundle"
  exit 0
fi
mkdir -p "${DEST}"
# byte for byte: the app checks every file against the sha256 in manifest.json and refuses extras,
# so Finder's .DS_Store files stay behind
rsync -a --exclude '.DS_Store' "${SOURCE}/" "${DEST}/"
echo "copied the bundle ${SOURCE} into the app"
