/* Chromium's libvk_swiftshader.so replaced by Mesa's lavapipe, for the f16 browser rig
   (scripts/chromium-f16-rig.sh). Test rig only: never shipped.

   - Dawn dlopens the SwiftShader ICD and looks up vkGetInstanceProcAddr; Mesa's ICDs
     export only the loader-ICD entry points (vk_icd*), so this forwards to them.
   - Chromium offers a CPU adapter to WebGPU only if it carries SwiftShader's vendor and
     device IDs (0x1AE0, 0xC0DE): the physical device's properties say so.
   - Loaded this way, lavapipe 25 reports the sampled- and storage-image array dynamic
     indexing features as missing (vulkaninfo, through the loader, reports them), and
     Dawn refuses an adapter without them, and lavapipe refuses a device that asks for
     them. The app's compute kernels use storage buffers only, so they are reported as
     present and left out again when the device is created. */
#include <string.h>
#include <vulkan/vulkan.h>

extern PFN_vkVoidFunction vk_icdGetInstanceProcAddr(VkInstance instance, const char *name);

static PFN_vkGetPhysicalDeviceProperties real_properties;
static PFN_vkGetPhysicalDeviceProperties2 real_properties2;
static PFN_vkGetPhysicalDeviceFeatures real_features;
static PFN_vkGetPhysicalDeviceFeatures2 real_features2;
static PFN_vkCreateDevice real_create_device;

static void as_swiftshader(VkPhysicalDeviceProperties *p) {
  p->vendorID = 0x1AE0;
  p->deviceID = 0xC0DE;
}

static void with_image_indexing(VkPhysicalDeviceFeatures *f) {
  f->shaderSampledImageArrayDynamicIndexing = VK_TRUE;
  f->shaderStorageImageArrayDynamicIndexing = VK_TRUE;
}

static void VKAPI_CALL properties(VkPhysicalDevice d, VkPhysicalDeviceProperties *p) {
  real_properties(d, p);
  as_swiftshader(p);
}

static void VKAPI_CALL properties2(VkPhysicalDevice d, VkPhysicalDeviceProperties2 *p) {
  real_properties2(d, p);
  as_swiftshader(&p->properties);
}

static void VKAPI_CALL features(VkPhysicalDevice d, VkPhysicalDeviceFeatures *f) {
  real_features(d, f);
  with_image_indexing(f);
}

static void VKAPI_CALL features2(VkPhysicalDevice d, VkPhysicalDeviceFeatures2 *f) {
  real_features2(d, f);
  with_image_indexing(&f->features);
}

static void without_image_indexing(VkPhysicalDeviceFeatures *f) {
  f->shaderSampledImageArrayDynamicIndexing = VK_FALSE;
  f->shaderStorageImageArrayDynamicIndexing = VK_FALSE;
}

static VkResult VKAPI_CALL create_device(VkPhysicalDevice d, const VkDeviceCreateInfo *info,
                                         const VkAllocationCallbacks *alloc, VkDevice *device) {
  VkDeviceCreateInfo asked = *info;
  VkPhysicalDeviceFeatures enabled;
  if (info->pEnabledFeatures) {
    enabled = *info->pEnabledFeatures;
    without_image_indexing(&enabled);
    asked.pEnabledFeatures = &enabled;
  }
  /* Dawn may pass the features in the chain instead; the chain is the caller's, so
     what is changed there is put back. */
  VkPhysicalDeviceFeatures2 *chained = NULL;
  VkPhysicalDeviceFeatures kept;
  for (VkBaseOutStructure *s = (VkBaseOutStructure *)info->pNext; s; s = s->pNext) {
    if (s->sType == VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2) {
      chained = (VkPhysicalDeviceFeatures2 *)s;
      kept = chained->features;
      without_image_indexing(&chained->features);
    }
  }
  VkResult r = real_create_device(d, &asked, alloc, device);
  if (chained) chained->features = kept;
  return r;
}

PFN_vkVoidFunction vkGetInstanceProcAddr(VkInstance instance, const char *name) {
  PFN_vkVoidFunction f = vk_icdGetInstanceProcAddr(instance, name);
  if (!f) return f;
  if (!strcmp(name, "vkGetPhysicalDeviceProperties")) {
    real_properties = (PFN_vkGetPhysicalDeviceProperties)f;
    return (PFN_vkVoidFunction)properties;
  }
  if (!strcmp(name, "vkGetPhysicalDeviceProperties2") || !strcmp(name, "vkGetPhysicalDeviceProperties2KHR")) {
    real_properties2 = (PFN_vkGetPhysicalDeviceProperties2)f;
    return (PFN_vkVoidFunction)properties2;
  }
  if (!strcmp(name, "vkGetPhysicalDeviceFeatures")) {
    real_features = (PFN_vkGetPhysicalDeviceFeatures)f;
    return (PFN_vkVoidFunction)features;
  }
  if (!strcmp(name, "vkGetPhysicalDeviceFeatures2") || !strcmp(name, "vkGetPhysicalDeviceFeatures2KHR")) {
    real_features2 = (PFN_vkGetPhysicalDeviceFeatures2)f;
    return (PFN_vkVoidFunction)features2;
  }
  if (!strcmp(name, "vkCreateDevice")) {
    real_create_device = (PFN_vkCreateDevice)f;
    return (PFN_vkVoidFunction)create_device;
  }
  return f;
}
