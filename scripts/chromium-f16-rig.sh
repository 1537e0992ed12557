#!/usr/bin/env bash
# A headless Chromium whose WebGPU adapter has `shader-f16`, on a machine without a GPU,
# so that the web app's f16 path (16-bit weights and compute on WebGPU) runs in a real
# browser. Prints the path of its launcher; pass that as CHROMIUM to web/e2e/drive.mjs.
#
# Chromium's own CPU adapter, SwiftShader, has no shader-f16. Mesa's lavapipe (Vulkan on
# the CPU) has it from Mesa 24 on (bookworm's 22.3 lacks what Dawn requires), and Debian
# builds Mesa 25 for bookworm in bookworm-backports. Chromium offers a CPU adapter to
# WebGPU only when it is SwiftShader (Vulkan vendor 0x1AE0, device 0xC0DE) and Dawn
# dlopens SwiftShader's ICD from Chromium's directory. So the rig is a copy of Chromium's
# directory (hard links) whose libvk_swiftshader.so is a small shim over lavapipe
# (scripts/chromium-f16-rig/shim.c): it exports the entry point Dawn looks up, gives
# the device SwiftShader's IDs, and reports two image-indexing features that lavapipe
# has but, loaded this way, reports as missing (the app's kernels use no images).
# Nothing is installed system-wide: the packages are unpacked under the rig's folder.
#
#   scripts/chromium-f16-rig.sh [DIR]     (default ~/.cache/megaqa/chromium-f16; a DIR
#                                         without a rig for this Chromium is emptied)
# Needs: Debian's chromium, gcc, curl, xz, dpkg-deb, and deb.debian.org (CI's Debian
# mirror). Idempotent: a rig built for the installed Chromium is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rig=${1:-$HOME/.cache/megaqa/chromium-f16}
chromium_dir=/usr/lib/chromium
stamp="$(/usr/lib/chromium/chromium --version 2>/dev/null) | $(sha256sum "$here/chromium-f16-rig/shim.c" | cut -c1-16)"
if [ -x "$rig/chromium-f16" ] && [ "$(cat "$rig/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$rig/chromium-f16"
  exit 0
fi
rm -rf "$rig"
mkdir -p "$rig/debs"
mirror=http://deb.debian.org/debian
# Mesa's Vulkan drivers and the libdrm they need, from bookworm-backports' index.
curl -fsS -m 120 "$mirror/dists/bookworm-backports/main/binary-amd64/Packages.xz" | xz -dc >"$rig/Packages"
for pkg in mesa-vulkan-drivers libdrm2 libdrm-amdgpu1; do
  file=$(awk -v p="Package: $pkg" '$0 == p {on = 1} on && /^Filename:/ {print $2; exit}' "$rig/Packages")
  [ -n "$file" ] || { echo "chromium-f16-rig: $pkg is not in bookworm-backports" >&2; exit 1; }
  curl -fsS -m 300 -o "$rig/debs/$pkg.deb" "$mirror/$file"
  dpkg-deb -x "$rig/debs/$pkg.deb" "$rig/mesa"
done
# The Vulkan headers (bookworm's libvulkan-dev), for the shim.
curl -fsS -m 120 "$mirror/dists/bookworm/main/binary-amd64/Packages.xz" | xz -dc >"$rig/Packages"
file=$(awk '$0 == "Package: libvulkan-dev" {on = 1} on && /^Filename:/ {print $2; exit}' "$rig/Packages")
curl -fsS -m 300 -o "$rig/debs/libvulkan-dev.deb" "$mirror/$file"
dpkg-deb -x "$rig/debs/libvulkan-dev.deb" "$rig/vulkan-dev"
lib=$rig/mesa/usr/lib/x86_64-linux-gnu
# Hard links where the cache shares Chromium's filesystem, else a copy (~350 MB).
cp -al "$chromium_dir" "$rig/chromium" 2>/dev/null || { rm -rf "$rig/chromium"; cp -a "$chromium_dir" "$rig/chromium"; }
rm "$rig/chromium/libvk_swiftshader.so"
gcc -O2 -shared -fPIC -I"$rig/vulkan-dev/usr/include" -o "$rig/chromium/libvk_swiftshader.so" \
  "$here/chromium-f16-rig/shim.c" -L"$lib" -l:libvulkan_lvp.so -Wl,-rpath,"$lib"
# The launcher: ANGLE (Chromium's GL) would take the same Vulkan ICD and fail to
# allocate on lavapipe, so the page composites in software and ANGLE uses EGL; the GPU
# process then lives and WebGPU gets the lavapipe adapter.
cat >"$rig/chromium-f16" <<EOF
#!/usr/bin/env bash
args=()
for a in "\$@"; do case "\$a" in --use-angle=*) ;; *) args+=("\$a") ;; esac; done
export LD_LIBRARY_PATH="$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$rig/chromium/chromium" "\${args[@]}" --use-angle=gl-egl --disable-gpu-compositing
EOF
chmod +x "$rig/chromium-f16"
rm -rf "$rig/debs" "$rig/Packages"
echo "$stamp" >"$rig/stamp"
echo "$rig/chromium-f16"
