/* Placeholder: the element formats land with the GGUF work. */
#include "compute/quant.h"
