#include "mma/emulated"
#include "linear/coop_body"
