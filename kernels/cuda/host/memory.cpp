// "Device" memory of the emulator: every allocation ends right at an inaccessible page, so a
// kernel reading or writing past the end of a buffer crashes the test instead of silently
// passing, and new memory is filled with 0xA5 (cudaMalloc memory is not zeroed either).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <sys/mman.h>
#include <unistd.h>

namespace {
struct Mapping {
    void* base;
    size_t len;
};
std::mutex g_mutex;
std::map<uintptr_t, Mapping>& mappings() {
    static std::map<uintptr_t, Mapping> m;
    return m;
}
}  // namespace

extern "C" void* prk_host_alloc(size_t bytes) {
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    size_t rounded = (bytes + 15) & ~size_t(15);
    if (rounded == 0) rounded = 16;
    size_t data_pages = (rounded + page - 1) / page;
    size_t len = (data_pages + 1) * page;
    void* base = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return nullptr;
    char* guard = static_cast<char*>(base) + data_pages * page;
    if (mprotect(guard, page, PROT_NONE) != 0) {
        munmap(base, len);
        return nullptr;
    }
    char* p = guard - rounded;
    std::memset(p, 0xA5, rounded);
    std::lock_guard<std::mutex> g(g_mutex);
    mappings()[reinterpret_cast<uintptr_t>(p)] = Mapping{base, len};
    return p;
}

extern "C" int prk_host_free(void* p) {
    std::lock_guard<std::mutex> g(g_mutex);
    auto it = mappings().find(reinterpret_cast<uintptr_t>(p));
    if (it == mappings().end()) return 1;
    munmap(it->second.base, it->second.len);
    mappings().erase(it);
    return 0;
}
