/** The icons the app uses, one import each so the bundle holds only these. */
export {
  ArrowDown, ArrowLeft, AtSign, Bell, Check, ChevronDown, CircleAlert, Copy, Download, File as FileIcon, FileText, Files, GitCompare, History, Redo2, Undo2, FilePlus, Eye, Hash, Link, LogOut,
  Menu, MessageSquarePlus, Paperclip, Pause, Pencil, Play, Plus, Reply, RotateCw, Search, Send, Settings, Smile, Sparkles,
  Trash, Upload, User as UserIcon, Users, WifiOff, X,
} from 'lucide';
