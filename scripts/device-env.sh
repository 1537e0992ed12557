# Sourced (not run) by the scripts a lent device machine runs, from the repository root
# (scripts/device-check-squad.sh, scripts/gpu-check.sh): the image has no Vulkan loader,
# so the packages `scripts/device-prepare.sh pack` put in .gl are unpacked; NVIDIA's ICD
# is named; and the prebuilt megaqa in ${GPU_IN2:-.gpu2}/megaqa.xz becomes $M
# (/tmp/mq/megaqa).
mkdir -p /tmp/mq
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] &&
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export XDG_RUNTIME_DIR=/tmp/xdg
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
M=/tmp/mq/megaqa
xz -dc "${GPU_IN2:-.gpu2}/megaqa.xz" > $M && chmod +x $M
